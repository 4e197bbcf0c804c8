"""Flower clients for honest and Byzantine workers."""
