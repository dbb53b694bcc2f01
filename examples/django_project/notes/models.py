from django.db import models


class Note(models.Model):
    """What the tasks of task.py leave behind."""

    text = models.CharField(max_length=200)
    source = models.CharField(max_length=20)  # 'cron' or 'spooler'
    pid = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f'{self.source}: {self.text}'
