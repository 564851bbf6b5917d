"""E-mail notifications: who is told what, once per reason, sent by jobs over SMTP."""
