"""Jinja templates for the generated C and the hand-written runtime header they copy."""
