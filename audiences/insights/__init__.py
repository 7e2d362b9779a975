"""RFM and lifecycle insights over purchase facts."""
