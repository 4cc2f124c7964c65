"""Agency services: records in the agency's own database, the engine handler, interception checks."""
