"""The market CSV files operators load and export: their layout, validation and bulk storage.

`partners.market_import` and `partners.market_export` are the services; this package holds
their parts.
"""
