from django.apps import AppConfig


class CsvImportConfig(AppConfig):
    name = "carebell.interop.csv"
    label = "interop_csv"
