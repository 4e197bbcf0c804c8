"""The attack library: how Byzantine workers corrupt their data or their messages."""
