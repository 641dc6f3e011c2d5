"""Importers for asset data from other systems (CMDB exports). Pure parsing and
validation; the services layer stores the results."""
