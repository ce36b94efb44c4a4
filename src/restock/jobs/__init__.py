"""Background jobs behind one interface (``JobQueue``): embedded thread or Celery."""

from restock.jobs.base import TERMINAL, Event, Job, JobQueue, Task
from restock.jobs.records import JobRecords
from restock.jobs.thread import ThreadJobQueue

__all__ = ["TERMINAL", "Event", "Job", "JobQueue", "JobRecords", "Task", "ThreadJobQueue"]
