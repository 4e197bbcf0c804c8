"""quickstart-legacy: a Flower / PyTorch app (legacy API) with a fedrobust strategy."""
