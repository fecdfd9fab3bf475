-- Code a non-superuser (the database owner, OWNER) plants at every place PostgreSQL 15
-- lets it fire from bundle SQL; each site records that it fired (lp.fired) and tries to
-- climb back to the login and make OWNER a superuser. tests/least_privilege.rs.
CREATE TABLE public.approvals(id int, who text);
CREATE FUNCTION public.climb(site text) RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_catalog.set_config('lp.fired', coalesce(pg_catalog.current_setting('lp.fired', true), '') || site || ',', false);
  BEGIN
    EXECUTE 'RESET SESSION AUTHORIZATION';
    EXECUTE 'RESET ROLE';
  EXCEPTION WHEN others THEN NULL;
  END;
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', 'OWNER');
  END IF;
  RETURN 1;
END $f$;
CREATE FUNCTION public.climb_i(site text, v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.climb(site); RETURN v; END $f$;
CREATE FUNCTION public.climb_tg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.climb('trigger'); RETURN NEW; END $f$;
CREATE FUNCTION public.climb_eq(int, int) RETURNS bool LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.climb('operator'); RETURN $1 = $2; END $f$;
CREATE FUNCTION public.climb_sf(int, int) RETURNS int LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.climb('aggregate'); RETURN $2; END $f$;
CREATE FUNCTION public.climb_evt() RETURNS event_trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.climb('event trigger'); END $f$;
CREATE FUNCTION public.climb_diff(float8, float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.climb('range'); RETURN $1 - $2; END $f$;
CREATE TYPE public.pair AS (a int, b int);
CREATE FUNCTION public.pair_int(public.pair) RETURNS int LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.climb('cast'); RETURN ($1).a; END $f$;
CREATE CAST (public.pair AS int) WITH FUNCTION public.pair_int(public.pair);
CREATE TRIGGER stamp BEFORE INSERT ON public.approvals FOR EACH ROW EXECUTE FUNCTION public.climb_tg();
CREATE DOMAIN public.d_default AS int DEFAULT public.climb('domain default');
CREATE TABLE public.t_domain_default(id int, c public.d_default);
CREATE DOMAIN public.d_check AS int CHECK (public.climb('domain check') > 0);
CREATE TABLE public.t_domain_check(c public.d_check);
CREATE TABLE public.t_default(id int, c int DEFAULT public.climb('default'));
CREATE TABLE public.t_check(i int CHECK (public.climb('check') > 0));
CREATE TABLE public.t_part(a int) PARTITION BY RANGE (public.climb_i('partition key', a));
CREATE TABLE public.t_part_all PARTITION OF public.t_part FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
CREATE TABLE public.t_generated(i int, g int GENERATED ALWAYS AS (public.climb_i('generated', i)) STORED);
CREATE TABLE public.t_index(i int);
CREATE INDEX t_index_climb ON public.t_index (public.climb_i('index', i));
CREATE VIEW public.v_climb AS SELECT public.climb('view') AS x;
CREATE TABLE public.t_rule(i int);
CREATE RULE r_climb AS ON INSERT TO public.t_rule DO ALSO SELECT public.climb('rule');
CREATE TABLE public.t_policy(i int);
ALTER TABLE public.t_policy ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY p_climb ON public.t_policy USING (public.climb('policy') > 0) WITH CHECK (public.climb('policy') > 0);
CREATE OPERATOR public.=== (FUNCTION = public.climb_eq, LEFTARG = int, RIGHTARG = int);
CREATE AGGREGATE public.agg_climb(int) (SFUNC = public.climb_sf, STYPE = int);
CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = public.climb_diff);
