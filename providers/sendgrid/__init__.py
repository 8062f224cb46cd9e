"""SendGrid: email through the v3 Mail Send API."""
