"""The care-team dashboard, served by the API under ``/dashboard`` behind the same tokens.

- `charts`: pure SVG chart building (blood pressure over time, glucose profile by time of day).
- `i18n`: languages and glucose units; gettext catalogues under `locale/` (Babel).
- `views`: what each page reads, through `api.access` (consent decided and audited per section).
- `render`: templates in the user's language, times in the patient's time zone.
- `routes`: the FastAPI router (sign-in cookie, pages, acknowledge and resolve).
"""
