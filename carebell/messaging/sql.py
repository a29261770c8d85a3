"""The planner's former path to carebell.sql, kept only while
carebell/messaging/planning/ still imports it."""

from carebell.sql import utc, utc_params

__all__ = ["utc", "utc_params"]
