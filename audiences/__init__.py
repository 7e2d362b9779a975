"""Audiences: contacts, lists, consent, suppressions, events, segments (issues #3, #4)."""
