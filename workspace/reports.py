"""A function job's module, as the README's example calls it: `reports:send_report`."""
import datetime


def send_report(team, copies=1):
    """Pretends to send `copies` of a report to `team`; what it returns is the run's result."""
    print(f"sending {copies} report(s) to {team}")
    return {"team": team, "copies": copies, "at": datetime.datetime.now().isoformat()}
