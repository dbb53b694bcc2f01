from django.http import JsonResponse
from django.urls import path
from notes.models import Note


def notes(request):
    return JsonResponse({'notes': list(Note.objects.values('text', 'source'))})


urlpatterns = [path('', notes)]
