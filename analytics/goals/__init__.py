"""Goals: a KPI, a target (a value, or a change against the same period last year), a period
of whole months and an optional segment; their progress, the pace needed and a forecast."""
