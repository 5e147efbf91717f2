"""The run report: one self-contained HTML page of what a pipeline run left in the lakehouse (run_report.py), its
sections (run_sections, customer_sections, churn_sections), what the template lays out (page_data) and the shared
plotting (figures). Pages are rendered with cdp.templating and written with cdp.storage."""
