/* The rule builder: one component for every rule tree edited in the browser — a segment's rules
 * (templates/audiences/segment_form.html), a series' flow filter and a condition step of the
 * series builder (audiences.segments.widgets.RuleTreeTextarea draws their containers).
 *
 * A container asks for it and says where its parts are:
 *
 *   <div data-rule-builder="ID of the textarea holding the rules as JSON"
 *        data-schema="ID of a json_script with the kinds of condition"  (default rule-builder-schema)
 *        data-text="ID of a json_script with the builder's words"        (default rule-builder-text)
 *        data-readonly="true|false"      (default: read-only when the textarea is, or its fieldset is disabled)
 *        data-errors="IDs of elements listing rule errors by [data-path]"        (optional)
 *        data-preview-url="URL of the segment preview: a live count under the builder">  (optional)
 *
 * Every such container is drawn once: those in the page when it loads and those htmx swaps in
 * later (a side panel). The rule tree lives in the textarea, which the form posts; the builder
 * draws it as nested groups of conditions, writes every change back to the textarea and fires
 * `rules-changed` (bubbling to <body>). The segment page's preview listens for that event
 * (delay:400ms, so typing is debounced) and posts the rules for a live count, a sample of
 * contacts, or the rule's errors; the inputs those errors name are marked invalid here.
 *
 * Kinds of condition come from the schema (audiences.segments.compiler.builder_schema). A kind
 * whose schema lists `fields` gets the generic "field → operator → value" row, so a kind added
 * later on the same mechanism (campaigns' engagement) works without changes here.
 */
(function () {
  "use strict";

  const DAY_OPERATORS = ["in_last_days", "in_next_days", "anniversary_in_next_days"];
  const NO_VALUE = ["is_set", "not_set"];
  const PREVIEW_DELAY_MS = 400;

  function jsonOf(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function idsOf(text) {
    return (text || "").split(/\s+/).filter(Boolean);
  }

  // The CSRF token of the page: the form's, else the one htmx sends (base.html).
  function csrfToken(node) {
    const field = node.closest("form") && node.closest("form").querySelector("[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  // The live count under a builder (data-preview-url): the segment preview's answer, asked for
  // a moment after the last change; an answer overtaken by a newer question is dropped.
  function livePreview(root, textarea, onAnswer) {
    const box = document.createElement("div");
    box.className = "rule-preview";
    box.setAttribute("aria-live", "polite");
    root.after(box);
    let timer = null;
    let asked = 0;
    function ask() {
      const number = ++asked;
      const body = new FormData();
      body.append("rules", textarea.value);
      box.setAttribute("aria-busy", "true");
      fetch(root.dataset.previewUrl, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": csrfToken(root), "HX-Request": "true" },
        credentials: "same-origin",
      })
        .then((response) => (response.ok ? response.text() : ""))
        .then((html) => {
          if (number !== asked) return;
          box.removeAttribute("aria-busy");
          box.innerHTML = html;
          onAnswer(box);
        })
        .catch(() => box.removeAttribute("aria-busy"));
    }
    return {
      box,
      request() {
        clearTimeout(timer);
        timer = setTimeout(ask, PREVIEW_DELAY_MS);
      },
      now: ask,
    };
  }

  function mount(root) {
    if (root.ruleBuilder) return;
    const textarea = document.getElementById(root.dataset.ruleBuilder);
    if (!textarea) return;
    if (!root.id) root.id = textarea.id + "-builder";
    let preview = null;
    const schema = jsonOf(root.dataset.schema || "rule-builder-schema");
    const T = jsonOf(root.dataset.text || "rule-builder-text");
    if (!schema || !T) return;
    const readonly = root.dataset.readonly ? root.dataset.readonly === "true"
      : textarea.readOnly || textarea.disabled || !!textarea.closest("fieldset[disabled]");
    const kinds = Object.fromEntries(schema.kinds.map((k) => [k.kind, k]));
    const operatorsOf = (type) => schema.operators[type] || schema.operators.text;

    const initial = parse(textarea.value);
    let rules = initial || { match: "all", negate: false, conditions: [] };

    function parse(text) {
      try {
        const value = JSON.parse(text);
        return value && typeof value === "object" && !Array.isArray(value) ? value : null;
      } catch (error) {
        return null;
      }
    }

    // --- small DOM helpers -------------------------------------------------------------------

    function el(tag, attrs, children) {
      const node = document.createElement(tag);
      for (const [name, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false) continue;
        if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
        else if (name === "text") node.textContent = value;
        else node.setAttribute(name, value === true ? "" : value);
      }
      for (const child of children || []) if (child) node.append(child);
      if (readonly && ["INPUT", "SELECT", "BUTTON"].includes(node.tagName)) node.disabled = true;
      return node;
    }

    function select(path, role, options, current, onchange, label) {
      const node = el("select", { "data-path": path, "data-key": path + "|" + role, "aria-label": label, onchange });
      for (const option of options) {
        const item = el("option", { value: String(option.value), text: option.label });
        if (String(option.value) === String(current ?? "")) item.selected = true;
        node.append(item);
      }
      return node;
    }

    function input(path, role, attrs, oninput) {
      return el("input", { "data-path": path, "data-key": path + "|" + role, ...attrs, oninput });
    }

    // The noun after a count in the form the count takes (1 день, 3 дня, 5 дней): `forms` holds
    // it for 0 … 199 (esp/plurals.py); larger counts take the form of 100 + n % 100.
    function countWord(forms, fallback, n) {
      if (!Array.isArray(forms) || !Number.isInteger(n) || n < 0) return fallback;
      return forms[n < forms.length ? n : 100 + (n % 100)] || fallback;
    }

    // A whole-number input and its noun, kept in agreement while the number is typed;
    // onvalue gets the number (null when empty).
    function countInput(path, role, attrs, forms, fallback, onvalue) {
      const initial = attrs.value === "" || attrs.value === null || attrs.value === undefined ? NaN : Number(attrs.value);
      const word = el("span", { text: countWord(forms, fallback, initial) });
      const field = input(path, role, attrs, (e) => {
        const n = e.target.value === "" ? null : parseInt(e.target.value, 10);
        word.textContent = countWord(forms, fallback, n);
        onvalue(n);
      });
      return [field, word];
    }

    // --- changes: structural ones redraw, typing only writes the JSON --------------------------

    function changed() {
      textarea.value = JSON.stringify(rules, null, 1);
      announce();
    }

    // Bubbles to <body>, where the segment page's preview listens; a builder with its own count
    // (data-preview-url) asks for it too.
    function announce() {
      root.dispatchEvent(new CustomEvent("rules-changed", { bubbles: true }));
      if (preview) preview.request();
    }

    function redraw() {
      const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.key;
      root.replaceChildren(renderGroup(rules, "", null));
      if (focused) {
        const again = root.querySelector(`[data-key="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
      changed();
    }

    textarea.addEventListener("change", () => {
      const parsed = parse(textarea.value);
      if (parsed) {
        rules = parsed;
        redraw();
      } else {
        announce();
      }
    });

    // --- groups ------------------------------------------------------------------------------

    function renderGroup(group, path, parent) {
      group.conditions = Array.isArray(group.conditions) ? group.conditions : [];
      const at = (i) => `${path ? path + "." : ""}conditions[${i}]`;
      const head = el("div", { class: "rule-group-head" }, [
        select(path ? `${path}.match` : "match", "match", [{ value: "all", label: T.all }, { value: "any", label: T.any }], group.match || "all", (e) => {
          group.match = e.target.value;
          changed();
        }, T.all + " / " + T.any),
        el("label", {}, [
          el("input", {
            type: "checkbox", role: "switch", checked: !!group.negate, "data-key": path + "|negate",
            onchange: (e) => { group.negate = e.target.checked; changed(); },
          }),
          document.createTextNode(" " + T.negate),
        ]),
        parent ? el("button", {
          type: "button", class: "secondary outline rule-remove", text: T.remove_group, "data-key": path + "|remove",
          onclick: () => { parent.conditions.splice(parent.conditions.indexOf(group), 1); redraw(); },
        }) : null,
      ]);
      const items = group.conditions.map((node, i) =>
        el("li", {}, [node && !("kind" in node) ? renderGroup(node, at(i), group) : renderCondition(node, at(i), group)]),
      );
      const list = el("ol", { class: "rule-list" }, items);
      const empty = group.conditions.length ? null : el("p", { class: "muted", text: T.empty });
      const actions = readonly ? null : el("div", { class: "row-actions" }, [
        el("button", {
          type: "button", class: "secondary", text: T.add_condition, "data-key": path + "|add-condition",
          onclick: () => { group.conditions.push(newCondition("attribute")); redraw(); },
        }),
        el("button", {
          type: "button", class: "secondary outline", text: T.add_group, "data-key": path + "|add-group",
          onclick: () => {
            group.conditions.push({ match: "any", negate: false, conditions: [newCondition("attribute")] });
            redraw();
          },
        }),
      ]);
      return el("fieldset", { class: "rule-group", "data-path": path || "rules" }, [head, empty, list, actions]);
    }

    // --- conditions --------------------------------------------------------------------------

    function firstOf(options) {
      return options && options.length ? options[0].value : null;
    }

    function defaultValue(type, operator) {
      if (NO_VALUE.includes(operator)) return undefined;
      if (DAY_OPERATORS.includes(operator)) return 30;
      if (operator === "between") return [null, null];
      if (operator === "in" || operator === "not_in" || (type === "array" && operator === "contains")) return [];
      if (type === "boolean") return true;
      return null;
    }

    function newCondition(kind) {
      const spec = kinds[kind] || {};
      if (spec.fields) {
        const field = spec.fields[0];
        const operator = firstOf(operatorsOf(field.type));
        return { kind, field: field.value, operator, value: defaultValue(field.type, operator) };
      }
      switch (kind) {
        case "list":
          return { kind, operator: "in", list_id: firstOf(spec.lists), status: "subscribed" };
        case "tag":
          return { kind, operator: "in", value: [] };
        case "consent":
          return { kind, did: true, action: "confirmed", list_id: null };
        case "event":
          return { kind, did: true, name: "", where: [], count_operator: "gte", count: 1, period: "in_last_days", days: 30 };
        case "engagement": // campaigns/engagement.py
          return { kind, did: true, action: "opened", template_id: null, period: "in_last_days", days: 30, count: 1 };
        default:
          return spec.choices ? { kind, operator: "in", value: [] } : { kind };
      }
    }

    function renderCondition(condition, path, parent) {
      const kindSelect = select(path, "kind", schema.kinds.map((k) => ({ value: k.kind, label: k.label })), condition.kind,
        (e) => {
          parent.conditions[parent.conditions.indexOf(condition)] = newCondition(e.target.value);
          redraw();
        }, T.kind);
      const spec = kinds[condition.kind];
      let controls;
      if (!spec) controls = [el("small", { class: "muted", text: T.unknown_kind })];
      else if (spec.fields) controls = fieldControls(condition, path, spec);
      else if (RENDERERS[condition.kind]) controls = RENDERERS[condition.kind](condition, path, spec);
      else if (spec.choices) controls = choiceControls(condition, path, spec);
      else controls = [el("small", { class: "muted", text: T.unknown_kind })];
      const remove = readonly ? null : el("button", {
        type: "button", class: "secondary outline rule-remove", "aria-label": T.remove, text: "×", "data-key": path + "|remove",
        onclick: () => { parent.conditions.splice(parent.conditions.indexOf(condition), 1); redraw(); },
      });
      return el("div", { class: "rule-condition", "data-path": path }, [kindSelect, ...controls, remove]);
    }

    // field → operator → value (attribute, facts, and kinds added later with `fields`)
    function fieldControls(condition, path, spec) {
      const field = spec.fields.find((f) => f.value === condition.field) || spec.fields[0];
      const operators = operatorsOf(field.type);
      const fieldSelect = select(`${path}.field`, "field", spec.fields, condition.field, (e) => {
        const next = spec.fields.find((f) => f.value === e.target.value);
        condition.field = next.value;
        if (next.type !== field.type || JSON.stringify(next.choices) !== JSON.stringify(field.choices)) {
          condition.operator = firstOf(operatorsOf(next.type));
          condition.value = defaultValue(next.type, condition.operator);
        }
        redraw();
      }, T.field);
      const operatorSelect = select(`${path}.operator`, "operator", operators, condition.operator, (e) => {
        condition.operator = e.target.value;
        condition.value = defaultValue(field.type, condition.operator);
        if (condition.value === undefined) delete condition.value;
        redraw();
      }, T.operator);
      return [fieldSelect, operatorSelect, ...valueControls(condition, "value", `${path}.value`, field.type, condition.operator, field.choices)];
    }

    function inputType(type) {
      return { number: "number", date: "date", datetime: "date" }[type] || "text";
    }

    function fromInput(type, text) {
      if (text === "") return null;
      if (type === "number") {
        const number = Number(text);
        return Number.isFinite(number) ? number : text;
      }
      return text;
    }

    // The value inputs of a type and operator; they write target[key].
    function valueControls(target, key, path, type, operator, choices) {
      const labelled = { "aria-label": T.value };
      if (NO_VALUE.includes(operator) || !operator) return [];
      if (DAY_OPERATORS.includes(operator)) {
        return [
          ...countInput(path, "days", { type: "number", min: 0, step: 1, value: target[key] ?? "", class: "rule-days", ...labelled },
            T.days_forms, T.days, (n) => { target[key] = n; changed(); }),
        ];
      }
      if (operator === "between") {
        if (!Array.isArray(target[key])) target[key] = [null, null];
        const bound = (i) => input(`${path}[${i}]`, "between" + i,
          { type: inputType(type), step: "any", value: target[key][i] ?? "", ...labelled },
          (e) => { target[key][i] = fromInput(type, e.target.value); changed(); });
        return [bound(0), el("span", { text: T.and }), bound(1)];
      }
      const many = operator === "in" || operator === "not_in" || (type === "array" && operator === "contains");
      if (many && choices && choices.length) {
        const chosen = new Set(Array.isArray(target[key]) ? target[key] : []);
        return [el("span", { class: "rule-choices", "data-path": path }, choices.map((choice) => {
          const value = typeof choice === "object" ? choice.value : choice;
          const text = typeof choice === "object" ? choice.label : choice;
          return el("label", {}, [
            el("input", {
              type: "checkbox", value, checked: chosen.has(value), "data-key": `${path}|${value}`,
              onchange: (e) => {
                if (e.target.checked) chosen.add(value); else chosen.delete(value);
                target[key] = Array.from(chosen);
                changed();
              },
            }),
            document.createTextNode(" " + text),
          ]);
        }))];
      }
      if (many) {
        const shown = Array.isArray(target[key]) ? target[key].join(", ") : (target[key] ?? "");
        return [input(path, "many", { type: "text", value: shown, placeholder: T.values_hint, ...labelled }, (e) => {
          target[key] = e.target.value.split(",").map((part) => part.trim()).filter(Boolean)
            .map((part) => fromInput(type === "array" ? "text" : type, part));
          changed();
        })];
      }
      if (type === "boolean") {
        return [select(path, "bool", [{ value: "true", label: T.yes }, { value: "false", label: T.no }],
          String(target[key] ?? true), (e) => { target[key] = e.target.value === "true"; changed(); }, T.value)];
      }
      if (type === "choice" && choices && choices.length) {
        if (target[key] == null) target[key] = choices[0];
        return [select(path, "choice", choices.map((c) => ({ value: c, label: c })), target[key],
          (e) => { target[key] = e.target.value; changed(); }, T.value)];
      }
      return [input(path, "value", { type: inputType(type), step: type === "number" ? "any" : null, value: target[key] ?? "", ...labelled },
        (e) => { target[key] = fromInput(type, e.target.value); changed(); })];
    }

    // A named group the contact is in (RFM segment, lifecycle stage): in / not in, with boxes.
    function choiceControls(condition, path, spec) {
      const operators = [{ value: "in", label: T.in }, { value: "not_in", label: T.not_in }];
      return [
        select(`${path}.operator`, "operator", operators, condition.operator || "in",
          (e) => { condition.operator = e.target.value; changed(); }, T.operator),
        ...valueControls(condition, "value", `${path}.value`, "choice", "in", spec.choices),
      ];
    }

    const RENDERERS = {
      // opened / clicked / did not … [any email | a template] at least N times [in the last N days | ever];
      // its words come with the kind's schema (campaigns/engagement.py).
      engagement(condition, path, spec) {
        const words = spec.text || {};
        const did = condition.did !== false;
        const period = condition.period || "ever";
        const window = period === "in_last_days" ? [
          ...countInput(`${path}.days`, "days", { type: "number", min: 0, step: 1, value: condition.days ?? "", class: "rule-days", "aria-label": words.days },
            words.days_forms, words.days, (n) => { condition.days = n; changed(); }),
        ] : [];
        return [
          select(`${path}.action`, "action", spec.actions, `${did}|${condition.action || "opened"}`, (e) => {
            const [flag, action] = e.target.value.split("|");
            condition.did = flag === "true";
            condition.action = action;
            changed();
          }, T.operator),
          select(`${path}.template_id`, "template", spec.templates, condition.template_id ?? "",
            (e) => { condition.template_id = e.target.value ? parseInt(e.target.value, 10) : null; changed(); }, T.value),
          el("span", { text: words.at_least }),
          ...countInput(`${path}.count`, "count", { type: "number", min: 1, step: 1, value: condition.count ?? 1, class: "rule-days", "aria-label": words.times },
            words.times_forms, words.times, (n) => { condition.count = n; changed(); }),
          select(`${path}.period`, "period", spec.periods, period, (e) => {
            condition.period = e.target.value;
            delete condition.days;
            if (condition.period === "in_last_days") condition.days = 30;
            redraw();
          }, T.between),
          ...window,
        ];
      },
      list(condition, path, spec) {
        return [
          select(`${path}.operator`, "operator", [{ value: "in", label: T.list_in }, { value: "not_in", label: T.list_not_in }],
            condition.operator, (e) => { condition.operator = e.target.value; changed(); }, T.operator),
          select(`${path}.list_id`, "list", spec.lists, condition.list_id,
            (e) => { condition.list_id = parseInt(e.target.value, 10); changed(); }, T.field),
          select(`${path}.status`, "status", spec.statuses, condition.status,
            (e) => { condition.status = e.target.value; changed(); }, T.status),
        ];
      },
      tag(condition, path) {
        const operators = operatorsOf("array");
        return [
          select(`${path}.operator`, "operator", operators, condition.operator, (e) => {
            condition.operator = e.target.value;
            condition.value = defaultValue("array", condition.operator);
            if (condition.value === undefined) delete condition.value;
            redraw();
          }, T.operator),
          ...valueControls(condition, "value", `${path}.value`, "array", condition.operator, null),
        ];
      },
      consent(condition, path, spec) {
        return [
          select(`${path}.did`, "did", [{ value: "true", label: T.has }, { value: "false", label: T.has_not }],
            String(condition.did !== false), (e) => { condition.did = e.target.value === "true"; changed(); }, T.operator),
          select(`${path}.action`, "action", spec.actions, condition.action,
            (e) => { condition.action = e.target.value; changed(); }, T.value),
          select(`${path}.list_id`, "list", [{ value: "", label: T.any_list }, ...spec.lists], condition.list_id ?? "",
            (e) => { condition.list_id = e.target.value ? parseInt(e.target.value, 10) : null; changed(); }, T.field),
        ];
      },
      event(condition, path, spec) {
        condition.where = Array.isArray(condition.where) ? condition.where : [];
        const listId = `${root.id}-events`;
        if (!document.getElementById(listId)) {
          root.after(el("datalist", { id: listId }, (spec.names || []).map((name) => el("option", { value: name }))));
        }
        const period = select(`${path}.period`, "period", [
          { value: "ever", label: T.ever }, { value: "in_last_days", label: T.in_last_days }, { value: "between", label: T.between },
        ], condition.period || "ever", (e) => {
          condition.period = e.target.value;
          delete condition.days; delete condition.from; delete condition.to;
          if (condition.period === "in_last_days") condition.days = 30;
          if (condition.period === "between") { condition.from = null; condition.to = null; }
          redraw();
        }, T.between);
        const window = [];
        if (condition.period === "in_last_days") {
          window.push(...countInput(`${path}.days`, "days", { type: "number", min: 0, step: 1, value: condition.days ?? "", class: "rule-days", "aria-label": T.days },
            T.days_forms, T.days, (n) => { condition.days = n; changed(); }));
        } else if (condition.period === "between") {
          for (const bound of ["from", "to"]) {
            window.push(input(`${path}.${bound}`, bound, { type: "date", value: condition[bound] ?? "", "aria-label": T.between },
              (e) => { condition[bound] = e.target.value || null; changed(); }));
          }
        }
        const where = condition.where.map((item, i) => {
          const itemPath = `${path}.where[${i}]`;
          return el("div", { class: "rule-where", "data-path": itemPath }, [
            input(`${itemPath}.property`, "property", { type: "text", value: item.property ?? "", placeholder: T.property, "aria-label": T.property },
              (e) => { item.property = e.target.value; changed(); }),
            select(`${itemPath}.operator`, "operator", spec.property_operators, item.operator, (e) => {
              item.operator = e.target.value;
              item.value = defaultValue("text", item.operator);
              if (item.value === undefined) delete item.value;
              redraw();
            }, T.operator),
            ...valueControls(item, "value", `${itemPath}.value`, ["gt", "gte", "lt", "lte", "between"].includes(item.operator) ? "number" : "text", item.operator, null)
              .map((node) => {
                // A property's value is a number when it looks like one ("50" → 50).
                if (node.tagName === "INPUT" && node.type === "text") {
                  node.addEventListener("input", () => {
                    const convert = (v) => (v !== "" && v !== null && Number.isFinite(Number(v)) ? Number(v) : v);
                    item.value = Array.isArray(item.value) ? item.value.map(convert) : convert(item.value);
                    changed();
                  });
                }
                return node;
              }),
            readonly ? null : el("button", {
              type: "button", class: "secondary outline rule-remove", text: "×", "aria-label": T.remove, "data-key": itemPath + "|remove",
              onclick: () => { condition.where.splice(i, 1); redraw(); },
            }),
          ]);
        });
        return [
          select(`${path}.did`, "did", [{ value: "true", label: T.did }, { value: "false", label: T.did_not }],
            String(condition.did !== false), (e) => { condition.did = e.target.value === "true"; changed(); }, T.operator),
          input(`${path}.name`, "name", { type: "text", list: listId, value: condition.name ?? "", placeholder: T.event_name, "aria-label": T.event_name, class: "rule-event-name" },
            (e) => { condition.name = e.target.value; changed(); }),
          select(`${path}.count_operator`, "count_operator", spec.count_operators, condition.count_operator || "gte",
            (e) => { condition.count_operator = e.target.value; changed(); }, T.operator),
          ...countInput(`${path}.count`, "count", { type: "number", min: 0, step: 1, value: condition.count ?? 1, class: "rule-days", "aria-label": T.times },
            T.times_forms, T.times, (n) => { condition.count = n; changed(); }),
          period,
          ...window,
          el("div", { class: "rule-wheres" }, [
            ...where,
            readonly ? null : el("button", {
              type: "button", class: "secondary outline", text: T.where, "data-key": path + "|add-where",
              onclick: () => { condition.where.push({ property: "", operator: "eq", value: "" }); redraw(); },
            }),
          ]),
        ];
      },
    };

    // --- errors from the server: mark the inputs they name -----------------------------------

    function markErrors(container) {
      root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
      container.querySelectorAll("[data-path]").forEach((item) => {
        let path = item.dataset.path;
        while (path) {
          const target = root.querySelector(`[data-path="${CSS.escape(path)}"]`);
          if (target) {
            target.setAttribute("aria-invalid", "true");
            break;
          }
          path = path.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
        }
      });
    }

    root.ruleBuilder = { markErrors, errorSources: idsOf(root.dataset.errors) };
    root.replaceChildren(renderGroup(rules, "", null));
    if (initial) {
      textarea.value = JSON.stringify(rules, null, 1);
    } else if (textarea.value.trim() && textarea.closest("details")) {
      textarea.closest("details").open = true; // not JSON: left as typed, to be fixed by hand
    }
    for (const id of root.ruleBuilder.errorSources) {
      const listed = document.getElementById(id);
      if (listed) markErrors(listed);
    }
    if (root.dataset.previewUrl && !readonly) {
      preview = livePreview(root, textarea, markErrors);
      preview.now();
    }
  }

  // Errors swapped into an element a builder listens to (the segment page's preview).
  document.body.addEventListener("htmx:afterSwap", (event) => {
    const target = event.target;
    if (!target || !target.id) return;
    document.querySelectorAll("[data-rule-builder]").forEach((root) => {
      if (root.ruleBuilder && root.ruleBuilder.errorSources.includes(target.id)) root.ruleBuilder.markErrors(target);
    });
  });

  function mountAll(node) {
    if (node.matches && node.matches("[data-rule-builder]")) mount(node);
    if (node.querySelectorAll) node.querySelectorAll("[data-rule-builder]").forEach(mount);
  }

  document.addEventListener("htmx:load", (event) => mountAll(event.target));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll(document));
  else mountAll(document);
})();
