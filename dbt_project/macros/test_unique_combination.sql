{#- A combination of columns is unique (a generic test, so that no package download is needed). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(", ") }}, count(*) as occurrences
from {{ model }}
group by all
having count(*) > 1
{% endtest %}
