"""Email notifications: an outbox written with the change, and senders chosen by configuration."""
