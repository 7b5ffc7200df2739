"""Catalogs shipped with scopesvc: the default (calendly.yaml) and examples."""
