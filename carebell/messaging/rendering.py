"""The planner's former path to carebell.dispatch.rendering, kept only while
carebell/messaging/planning/ still imports it."""

from carebell.dispatch.rendering import render_batch

__all__ = ["render_batch"]
