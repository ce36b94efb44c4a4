"""Forecasting members behind one interface (see ``restock.models.base``)."""
