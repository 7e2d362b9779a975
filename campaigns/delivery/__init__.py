"""The one road every email takes: Message rows are created (services), claimed in batches
(claims), checked at send time, rendered and handed to the workspace's provider (sender), and rows a
crashed worker left behind are sorted out (recovery). See campaigns/models.py for the states."""
