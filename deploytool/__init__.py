"""deploytool: one spec -> every deployment artifact of a multi-tenant Flask + WhatsApp system."""

__version__ = "0.1.0"
