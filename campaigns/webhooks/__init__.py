"""Provider webhooks: each ESP's delivery and engagement events, through anymail's tracking
webhook views built per request with the provider's own secrets (views.py, esps.py), mapped to
our message events (normalise.py) and recorded with campaigns.events.message_event_record
(services.py). sns.py and svix.py check the signatures anymail leaves unchecked here."""
