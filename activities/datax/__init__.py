"""DataX tasks (reference §3 DATAX, infrastructure notes §4-§6): job JSON built at run time, run locally
or as a Kubernetes Job.

* :mod:`.columns` - writer columns from the SELECT list, as DS does;
* :mod:`.builders` - one builder per reader/writer family (JDBC shared, HDFS, HBase, HTTP, txtfile,
  stream), in a registry: a new source type is one class;
* :mod:`.job` - UI-mode and custom-mode (template with ``datasourceId`` markers) job JSON;
* :mod:`.stats` - progress lines and the final statistics block;
* :mod:`.local` / :mod:`.k8s` - the two runners; :mod:`.activity` - the ``DATAX`` activity and routing.

docs/datax.md is the user-facing description.
"""
