"""Automations: series (drip campaigns), their steps and the engine."""
