"""A context manager that collects what Flower's logger prints during a test."""

import logging


class FlowerLog(logging.Handler):
    """Collects what Flower's logger prints during a test."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("flwr").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("flwr").removeHandler(self)
