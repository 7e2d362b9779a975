"""Email content: MJML templates personalised in a sandboxed Django template language.

- sandbox: the restricted template engine (plain data only, refused tags, time/size budgets);
- mjml: MJML → HTML with errors on lines; where template tags may stand in MJML;
- rendering: compile once per template version, render per recipient (`render_email`), the
  context (`email_context`, `contact_as_dict`) and the plain-text part;
- blocks / starters: the layout's default header and footer, e-commerce blocks, the eight
  starter templates and the editor's sample data;
- selectors / services: reads and writes (templates, the layout, recommendations);
- views / forms / urls / api: the pages (list, gallery, editor with live preview, layout) and
  the /api/v1/templates endpoints.
"""
