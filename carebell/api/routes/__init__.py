"""The API's resources, one module each; every route calls carebell's entry points
and asks carebell.sites.access with the token's user."""
