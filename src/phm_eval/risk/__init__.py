"""Emergency-admission risk models and their validation, reported to TRIPOD+AI."""
