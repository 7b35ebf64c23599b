"""The original platform's sample task: prints the time it ran."""
import datetime

print(datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
