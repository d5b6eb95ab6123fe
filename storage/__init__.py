"""Porpoise's own database: tables and stores."""
