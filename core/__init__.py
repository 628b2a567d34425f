"""Cloud-agnostic domain logic: settings, catalogs, sizing and the engine command line.

Nothing here imports a cloud SDK, so every target (and every test) can use it cheaply.
"""
