"""Campaigns: email content, broadcasts, messages, providers, tracking (issue #5 on)."""
