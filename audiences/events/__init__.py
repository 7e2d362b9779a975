"""Events: the explorer and the contact timeline."""
