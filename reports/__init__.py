"""Scheduled reports by email: subscriptions (a view of the live page, recipients, a schedule),
each period's figures as an email with the revenue chart and a CSV, sent over SMTP once per
period whatever the number of processes.

subscriptions (stored, checked), schedule (periods and slots, pure), content (the figures,
through core), chart (kaleido), render (the email), send (SMTP), ledger (the send records and
their lease), service (what the page, CLI and scheduler ask), scheduler (the thread), cli.
Nothing is imported here: settings.py reads SMTP_URL through reports.send alone.
"""
