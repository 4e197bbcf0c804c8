"""quickstart-message-api: a Flower / PyTorch app (Message API) with a fedrobust strategy."""
