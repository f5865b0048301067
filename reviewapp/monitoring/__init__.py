"""Monitoring: drift checks and alarms, dashboard data and charts."""
