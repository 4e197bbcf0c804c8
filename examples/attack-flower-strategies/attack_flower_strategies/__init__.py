"""attack-flower-strategies: Flower's own strategies (Message API) under an omniscient attack."""
