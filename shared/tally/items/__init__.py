"""The DynamoDB item format of every table, in one place: keys, attribute names, decoding and
the expressions that write them. Only these modules know an attribute's stored name; the rest of
tally speaks of values, bounds, billed units and scopes.

  counter       the counters table (values, bounds, stats buckets, billing)
  api_key       the API keys table          workspace  the workspaces table
  invoice_item  the invoice items table     bucket     the rate limits table (token buckets)
  expression    the Update builder and conditions as data, shared by all of them
"""
