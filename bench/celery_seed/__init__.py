"""The seed's design, rebuilt for the benchmark: Flask behind gunicorn, Celery, Redis.

``tasks`` is the Celery worker's module (the seed's ``ml_worker/tasks.py``): a
prefork worker loads the same ``SentenceEncoder`` once per child in
``worker_process_init`` and runs one task at a time. ``app`` is the Flask
service (the seed's ``flask_app/app.py``): it sends tasks by name, as the seed
did, and answers the seed's status and result routes. Redis is the broker and
the result backend (``BENCH_REDIS_URL``).
"""
