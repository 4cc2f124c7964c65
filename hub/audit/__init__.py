"""The audit: rebuild history from the topics alone and check the services against it."""
