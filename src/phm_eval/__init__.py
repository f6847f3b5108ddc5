"""phm-eval: population health management evaluation for NHS primary care."""

__version__ = "0.1.0"
