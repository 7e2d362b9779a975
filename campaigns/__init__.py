"""Campaigns: email content, broadcasts, messages, providers, tracking."""
