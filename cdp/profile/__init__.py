"""Customer 360: one profile per customer (demographics, RFM, satisfaction, sentiment, consent), its history,
segments defined in conf, and KPI marts for BI."""
