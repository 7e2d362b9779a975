# A GIN index on the products customers bought, for "bought together" recommendations and the
# "Products bought" segment condition. Built concurrently: the facts table is written on every
# order, and at a million customers the build takes a while.

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0005_suppression_soft_bounces"),
        ("esp", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customerfacts",
            index=django.contrib.postgres.indexes.GinIndex(fields=["products"], name="facts_products"),
        ),
    ]
