"""Tracking and compliance of sent messages: opaque tokens, click and open tracking, the
List-Unsubscribe headers and the recipient's pages under /e/ (see campaigns.public_urls)."""
