"""Analytics: rollups, KPIs, funnels, cohorts, goals and dashboards."""
