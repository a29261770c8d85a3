from carebell.cli import main

main()
