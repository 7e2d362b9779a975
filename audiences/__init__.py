"""Audiences: contacts, lists, consent, suppressions, events, segments."""
